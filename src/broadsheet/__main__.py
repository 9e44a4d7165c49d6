import sys

from broadsheet.faces.cli import main

sys.exit(main())
