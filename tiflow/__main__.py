from tiflow.cli import app

app(prog_name="tiflow")
