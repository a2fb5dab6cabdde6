"""`python -m npadv` runs the npadv command."""
import sys

from .cli import main

sys.exit(main())
