"""Dataset indexing (MVTec AD, generic folders, the public datasets' own layouts), validation
and tf.data pipelines."""

from cutpaste_tf.data.index import (
                                    CategoryData,
                                    DataError,
                                    category_info,
                                    index_folders,
                                    index_mvtec,
                                    list_images,
                                    mvtec_categories,
)
from cutpaste_tf.data.layouts import LAYOUTS, index_layout, layout_categories
from cutpaste_tf.data.pipeline import (
                                    augment_batch,
                                    decode,
                                    eval_dataset,
                                    load_image,
                                    preprocess,
                                    train_dataset,
)
from cutpaste_tf.data.validate import (
                                    ImageHeader,
                                    ValidationReport,
                                    read_header,
                                    validate_category,
)

__all__ = [
    "CategoryData", "DataError", "ImageHeader", "LAYOUTS", "ValidationReport", "augment_batch",
    "category_info", "decode", "eval_dataset", "index_folders", "index_layout", "index_mvtec",
    "layout_categories", "list_images",
    "load_image", "mvtec_categories", "preprocess", "read_header", "train_dataset",
    "validate_category",
]
