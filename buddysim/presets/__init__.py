"""Machine presets shipped with buddysim (``NAME.toml``), read with ``importlib.resources``."""
