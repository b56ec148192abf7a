"""Operations: health and readiness probes, Prometheus metrics, ``doctor``, backups, logs and
the «Состояние системы» page."""
