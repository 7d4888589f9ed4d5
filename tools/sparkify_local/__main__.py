"""`python -m sparkify_local run|up|down|airflow|clean`: what `make run`, `make up`, `make down`,
`make airflow` and `make clean` call."""
import signal

from sparkify_local.runner import _sigterm, main

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    raise SystemExit(main())
