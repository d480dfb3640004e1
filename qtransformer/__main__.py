import sys

from qtransformer.cli import main

sys.exit(main())
