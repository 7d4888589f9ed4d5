"""`python -m sparkify_local run|up|down|airflow|clean`: what `make run`, `make up`, `make down`,
`make airflow` and `make clean` call."""
from sparkify_local.runner import install_signal_handlers, main

if __name__ == "__main__":
    install_signal_handlers()
    raise SystemExit(main())
