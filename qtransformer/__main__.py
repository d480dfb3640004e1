import sys

from qtransformer.commands.cli import main

sys.exit(main())
