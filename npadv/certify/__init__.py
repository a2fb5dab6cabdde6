"""Certified lower bounds on robust accuracy, beside the attacks' upper bounds.

    from npadv.certify import certify
    certified = certify(model, x, y, eps=0.1)       # (N,) bool: no input of the ball is wrong

ibp.py   interval bound propagation (Gowal et al. 2018): elementwise bounds on every
         activation over the ε-ball ∩ box, and the margin with the last layer folded in

An attack can only show that an example is not robust; a certificate proves that it is.
The true robust accuracy lies between the certified accuracy (below) and the accuracy under
the strongest attack (above).
"""
from .ibp import affine_bounds, certify, input_box, interval_bounds, layer_bounds, margin_bounds

__all__ = ["affine_bounds", "certify", "input_box", "interval_bounds", "layer_bounds",
           "margin_bounds"]
