#!/usr/bin/env bash
# Regenerates assets/demo.svg, the README's picture: the release binary's --demo, driven by
# keys in a real pseudo-terminal (tmux, 120×40), captured with its colours and drawn as SVG.
#
#   assets/screenshot.sh            # needs tmux, python3 and `pip install rich`
#
# The keys: filter to site=seattle, mark all shown, reboot, confirm; the capture is taken
# while the jobs are in flight, so the results pane shows a plan with its gauge.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
python3 -c 'import rich' 2>/dev/null || { echo "needs rich: pip install rich" >&2; exit 1; }

scratch=$(mktemp -d)
session="fleetdeck-shot-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$scratch"' EXIT

# A journal and state directory of its own, so an operator's own plans never show up.
tmux new-session -d -s "$session" -x 120 -y 40 \
  "env XDG_STATE_HOME=$scratch FLEETDECK_JOURNAL=$scratch/journal.jsonl target/release/fleetdeck --demo"

wait_for() {
  for _ in $(seq 100); do
    tmux capture-pane -t "$session" -p | grep -q "$1" && return 0
    sleep 0.1
  done
  echo "the screen never showed: $1" >&2
  tmux capture-pane -t "$session" -p >&2
  exit 1
}
# One key at a time, as a person types: Esc followed at once by a letter reads as Alt.
key() { tmux send-keys -t "$session" "$@"; sleep 0.3; }

wait_for "Devices 35"
key /
tmux send-keys -t "$session" -l "site=seattle"
key Enter
wait_for "6 shown"
key a
key b
wait_for "Reboot"
key Enter
wait_for "Confirm: 6 devices"
key Enter
wait_for "started"
sleep 2

tmux capture-pane -t "$session" -e -p > "$scratch/screen.ansi"
python3 - "$scratch/screen.ansi" assets/demo.svg <<'PY'
import io, re, sys
from rich.console import Console
from rich.text import Text

raw = open(sys.argv[1], encoding="utf-8").read()
# The simulator's port differs per run; a fixed one keeps the picture's diff to what changed.
raw = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:4580", raw)
console = Console(record=True, width=120, file=io.StringIO(), color_system="truecolor")
for line in raw.rstrip("\n").split("\n"):
    console.print(Text.from_ansi(line), no_wrap=True, crop=True)
console.save_svg(sys.argv[2], title="fleetdeck --demo")
PY
echo "wrote assets/demo.svg"
