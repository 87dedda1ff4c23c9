"""Sphinx configuration of the torchgeo_decur documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).
The API pages import the installed package; nothing is mocked, so the build needs the
package's own dependencies but no network.
"""

import sys
from pathlib import Path

# Document the checkout this file belongs to, not another installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torchgeo_decur

project = 'torchgeo_decur'
author = 'torchgeo_decur developers'
copyright = 'torchgeo_decur developers'
release = torchgeo_decur.__version__
version = release

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]

source_suffix = {'.md': 'markdown', '.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = ['_build']

# MyST: ``$...$`` maths, ``{eval-rst}`` blocks for autodoc, anchors for ``#`` links.
myst_enable_extensions = ['colon_fence', 'dollarmath', 'deflist']
myst_heading_anchors = 3

# Google-style docstrings.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Render 'Attributes:' sections as fields: NamedTuple fields are documented by autodoc
# already, and a second attribute entry would be a duplicate description.
napoleon_use_ivar = True

autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
# Arguments are documented in __init__ (Google style); show them with the class.
autoclass_content = 'both'
# Signatures carry full type hints; repeating them in the text adds nothing.
autodoc_typehints = 'signature'
# Our classes subclass torch, Lightning and torchgeo classes whose docstrings are not
# written for Sphinx; document only what this package defines.
autodoc_inherit_docstrings = False

html_theme = 'furo'
html_title = f'torchgeo_decur {release}'
