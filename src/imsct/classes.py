"""The one vocabulary of structures, used by the phantom, preprocessing, training, inference,
evaluation and the workflow."""

LESIONS = ("tumor", "edema", "cavity")  # what is labelled (ground truth), exclusive labels
CLASSES = (*LESIONS, "wholetumor")  # the tumor model's outputs, in order (whole tumor = their union)
OUTPUTS = (*CLASSES, "cord")  # the masks `imsct segment` writes per subject
