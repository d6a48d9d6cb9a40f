from aethercrown.cli import app

app(prog_name="aethercrown")
