import sys

from sparkify_aws_check.check import main

sys.exit(main())
