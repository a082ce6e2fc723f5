"""Preprocessing: T1w-to-T2w registration, resampling to 1x1x2 mm, cord masks."""

import os

# ITK reads its thread count once, when first used, so it is set here, once for the process, before
# anything imports ANTs: one thread makes registration reproducible to the bit (multi-threaded metric
# sums are not). Set IMSCT_ITK_THREADS to trade that for speed; registration QC records the count.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = os.environ.get("IMSCT_ITK_THREADS", "1")
ITK_THREADS = int(os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"])
