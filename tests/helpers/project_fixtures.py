"""Fixture repositories for ``kei import project``, generated into a folder.

One repository holds every case the research note (§7.5) lists: a Cargo workspace
(root ``[workspace]`` with no package, nested crates, a ``src/build/`` module, a
``target/`` of generated code), an npm workspace with a broken ``package.json``
fixture and a package whose best match is weak, PEP 621, poetry and ``setup.py`` packages (``name=NAME``,
``namespace_packages`` first), a Go module ``…/v2``, and a README and docs with
``## `` lines inside code fences.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

NOTIFY_RS = """\
use kei_runtime_core::notify::{Notification, NotifySeverity};

pub struct Telegram;

impl NotifyChannel for Telegram {
    fn send(&self, n: &Notification) -> Result<()> { let _ = "fn push("; Ok(()) }
    fn channel_name(&self) -> &str { "telegram" }
    fn supports_batching(&self) -> bool { false }
}
"""
BUILD_RS = """\
// a module called build: upstream skipped every folder named build
pub fn helper() -> u32 { 1 }
pub fn other() -> u32 { 2 }
"""
TRAIT_RS = """\
// defines the trait: its declarations are not implementations
pub trait Backup {
    fn push(&self);
    fn list(&self);
    fn restore(&self);
    fn prune_older_than(&self);
    fn destination_name(&self) -> &str;
}
pub struct Snapshot;
"""
MEMORY_PY = '''\
"""A memory backend on sqlite."""
import sqlite3


class SqliteMemory:
    def store(self, item):
        return item

    def query(self, q):
        return []

    def compact(self, since):
        pass

    def backend_name(self):
        return "sqlite"


def mirror_to_remote():  # a free function: not an implemented method
    pass
'''
GO_SRC = """\
package scheduler

import "github.com/robfig/cron"

type Cron struct{}

func (c *Cron) Register(t ScheduledTask) error { return nil }
func (c *Cron) Cancel() {}
func (c *Cron) List() {}
func (c *Cron) NextFire() {}
func (c *Cron) SchedulerName() string { return "cron" }
"""
MAILER_TS = """\
import { WebClient } from "@slack/web-api";
import { send as sendMail } from "email-sender";

interface Channel { channel_name(): string; supports_batching(): boolean }

export class SlackNotifier {
  send(message: string): void {}
  notifyAll(): void {}
}
"""
README = """\
# Demo

## Install

Run this:

```sh
## not a heading: a comment in a shell block
make install
```

## Usage: the short version

Call `demo run`. It works. It really works. A fourth sentence is dropped.

## x

too short a heading

## Empty
"""
DOCS = """\
## Configuration

Set `DEMO_HOME`.

~~~~
## still code
~~~~

## Second

More text.
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def fixture_repo(root: Path) -> Path:
    """The repository, written under ``root`` (which is returned)."""
    return with_script(write(root, {
        "README.md": README,
        "docs/config.md": DOCS,
        "docs/_draft.md": "## Hidden\n\nnot read\n",
        ".gitignore": "ignored/\n*.log\n",
        "ignored/Cargo.toml": '[package]\nname = "ignored"\n',
        "ignored/src/lib.rs": NOTIFY_RS,
        "debug.log": "noise",
        ".gitattributes": (
            "crates/vendored/** linguist-vendored\n"
            "crates/notify-tg/src/third_party.rs linguist-vendored\n"
            "crates/notify-tg/src/schema.rs linguist-generated=true\n"
            "crates/notify-tg/src/kept.rs linguist-generated=false\n"
            "*.rsx linguist-language=Rust\n"
        ),
        "crates/notify-tg/src/third_party.rs": NOTIFY_RS,
        "crates/notify-tg/src/schema.rs": BUILD_RS,
        "crates/notify-tg/src/kept.rs": "pub fn kept() {}\n",
        "crates/notify-tg/src/macro.rsx": "pub fn from_rsx() {}\n",
        "crates/vendored/big.rs": NOTIFY_RS,
        "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n',
        "crates/notify-tg/Cargo.toml": '[package]\nname = "notify-tg"\n',
        "crates/notify-tg/src/lib.rs": NOTIFY_RS,
        "crates/notify-tg/src/build/mod.rs": BUILD_RS,
        "crates/notify-tg/target/debug/build/out/gen.rs": "fn generated() {}\n" * 50,
        "crates/core/Cargo.toml": '[package]\nname = "core"\n',
        "crates/core/src/lib.rs": TRAIT_RS,
        "crates/core/nested/Cargo.toml": '[package]\nname = "core-nested"\n',
        "crates/core/nested/src/lib.rs": "pub fn nested() {}\n",
        "web/package.json": '{"name": "web", "private": true, "workspaces": ["packages/*"]}',
        "web/packages/ui/package.json": '{"name": "@demo/ui"}',
        "web/packages/ui/index.ts": "export class Ui { render(): void {} }\n",
        "web/packages/ui/util.js": "export function util() { return 1 }\n",
        "web/packages/ui/test/fixtures/bad/package.json": '{"name": "{{ name }}", ',
        "web/packages/mailer/package.json": '{"name": "@demo/mailer"}',
        "web/packages/mailer/index.ts": MAILER_TS,
        "py/pep621/pyproject.toml": '[project]\nname = "pep621-pkg"\n',
        "py/pep621/src/pkg/mem.py": MEMORY_PY,
        "py/poetry/pyproject.toml": '[tool.poetry]\nname = "poetry-pkg"\n',
        "py/poetry/poetry_pkg/__init__.py": "VALUE = 1\n",
        "py/setup/setup.py": (
            'from setuptools import setup\nNAME = "setup-pkg"\n'
            'setup(\n    namespace_packages=["ns"],\n    name=NAME,\n)\n'
        ),
        "py/setup/ns/__init__.py": "# comment only\n\nX = 1\n",
        "go/go.mod": "module example.com/sched/v2\n\ngo 1.22\n",
        "go/cron.go": GO_SRC,
    }))  # fmt: skip


def with_script(root: Path) -> Path:
    """An extension-less executable Python script in the setup.py package."""
    tool = root / "py/setup/bin/tool"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text("#!/usr/bin/env python3\nprint('tool')\n")
    tool.chmod(0o755)
    return root


def git_repo(root: Path) -> Path:
    """``root`` made a git repository with one commit."""
    run = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "fixture"], check=True)
    return root
