"""Certified lower bounds on robust accuracy, beside the attacks' upper bounds.

    from npadv.certify import certify
    certified = certify(model, x, y, eps=0.1)       # (N,) bool: no input of the ball is wrong

ibp.py    interval bound propagation (Gowal et al. 2018): elementwise bounds on every
          activation over the ε-ball ∩ box, and the margin with the last layer folded in
crown.py  CROWN (Zhang et al. 2018), with IBP's boxes for the layers (CROWN-IBP, 2020):
          the margin as a linear function of the input, carried back through linear
          relaxations of ReLU and max-pool; never looser than IBP

An attack can only show that an example is not robust; a certificate proves that it is.
The true robust accuracy lies between the certified accuracy (below) and the accuracy under
the strongest attack (above).
"""
from . import crown
from .crown import crown_margin_bounds
from .ibp import affine_bounds, certify, input_box, interval_bounds, layer_bounds, margin_bounds

__all__ = ["affine_bounds", "certify", "crown", "crown_margin_bounds", "input_box",
           "interval_bounds", "layer_bounds", "margin_bounds"]
