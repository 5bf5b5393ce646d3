from steadylink.cli.main import run

run()
