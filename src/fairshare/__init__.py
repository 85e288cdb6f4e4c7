"""fairshare: fair, explainable sharing of responsibility for people seeking protection in Europe.

The core (this package minus ``cli``) is pure: it reads only the reference data bundled with
the package and never does network or database I/O.
"""

__version__ = "0.1.0"
