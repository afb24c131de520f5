"""The runtime type checker the test suite installs on interv (see pytest addopts).

beartype with PEP 484's implicit numeric tower, so an ``int`` passes where ``float`` is
annotated, as Python's typing rules intend.
"""

from beartype import BeartypeConf, beartype

checker = beartype(conf=BeartypeConf(is_pep484_tower=True))
