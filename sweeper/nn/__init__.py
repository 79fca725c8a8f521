"""The feed-forward network in pure NumPy: no import here but NumPy."""
from ._checks import RangeError, check_range
from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation
from .bag import Bag
from .gradcheck import gradient_check
from .initializers import INITIALIZERS, Initializer
from .losses import LOSSES, Loss, class_probabilities
from .network import DTYPES, Network
from .optimizers import SGD
from .schedules import SCHEDULES, Schedule, make_schedule, schedule_keys

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "INITIALIZERS",
    "LOSSES",
    "OUTPUT_ACTIVATIONS",
    "SCHEDULES",
    "SGD",
    "Activation",
    "Bag",
    "Initializer",
    "Loss",
    "Network",
    "RangeError",
    "Schedule",
    "check_range",
    "class_probabilities",
    "gradient_check",
    "make_schedule",
    "schedule_keys",
]
