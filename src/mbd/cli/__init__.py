"""The ``mbd`` command line: one module per subcommand, dispatched by :mod:`mbd.cli.main`."""
