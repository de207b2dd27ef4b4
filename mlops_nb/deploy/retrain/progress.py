"""What a retraining job shows while it runs: one line per step under cron (files, pipes), a
progress bar at a terminal, and one last line that says how it ended and why."""

from __future__ import annotations

import time
from typing import Any

from mlops_nb.deploy.exits import decision

STEPS = ("lock", "package", "data", "validate", "prepare", "drift", "fit", "evaluate", "decide", "promote",
         "record")


def last_line(name: str, code: int, message: str) -> str:
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S')} mlops-nb retrain {name}: exit {code} "
            f"({decision(code)}): {message}")


class Progress:
    """One line per step (cron, files, pipes), or a tqdm progress bar at a terminal."""

    def __init__(self, out: Any):
        self.out = out
        self.name = ""
        self.bar = None
        if getattr(out, "isatty", lambda: False)():
            import shutil

            from tqdm import tqdm

            size = shutil.get_terminal_size((100, 24))  # a terminal that reports no size (0 x 0) gets 100 x 24
            self.bar = tqdm(total=len(STEPS), file=out, unit="step", leave=False, ncols=size.columns,
                            nrows=size.lines, mininterval=0,
                            bar_format="{bar:24} {n_fmt}/{total_fmt} [{elapsed}] {desc}")
            self.width = max(size.columns - 45, 20)

    def step(self, step: str, message: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{step}: {message}"[:self.width], refresh=False)
            self.bar.update(1)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{stamp} mlops-nb retrain {self.name}: [{STEPS.index(step) + 1}/{len(STEPS)}] {step}: {message}",
                  file=self.out, flush=True)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
