"""Networks two benchmarks share (torch).

A backbone that more than one benchmark builds on lives here once, so that no benchmark imports another:

- ``mobilenet_v1``  MobileNet-v1, the image_classification model and the backbone of single_stage_detector's
                    SSD-MobileNet-v1.

Unlike the framework-neutral modules, these import torch (on first use of a submodule; this file imports nothing).
"""
