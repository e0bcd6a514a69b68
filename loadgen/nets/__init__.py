"""Networks two benchmarks share (torch).

A network (or a tool over networks) that more than one benchmark uses lives here once, so that no benchmark
imports another:

- ``mobilenet_v1``  MobileNet-v1, the image_classification model and the backbone of single_stage_detector's
                    SSD-MobileNet-v1.
- ``tf_twin``       a PyTorch model replayed with TensorFlow ops and its weights (torch.fx), saved as a SavedModel
                    and TFLite: the TF export of image_classification and single_stage_detector.

Unlike the framework-neutral modules, these import torch (on first use of a submodule; this file imports nothing);
``tf_twin`` also imports tensorflow, inside its functions.
"""
