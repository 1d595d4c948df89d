from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain.devtools import compiler


class Command(BaseCommand):
    help = "Compile chain/contracts with the pinned solc into chain/contracts/build/<Name>.json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; fail when the committed artifacts differ from a fresh compile.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            artifacts = compiler.compile_all()
        except compiler.CompilationError as exc:
            raise CommandError(f"compilation failed:\n{exc}") from exc
        if options["check"]:
            problems = compiler.differences(artifacts)
            if problems:
                raise CommandError(
                    "contract artifacts are out of date (run `manage.py compilecontracts`):\n  "
                    + "\n  ".join(problems)
                )
            self.stdout.write(f"{len(artifacts)} contract artifacts match the sources.")
            return
        for path in compiler.write_artifacts(artifacts):
            self.stdout.write(f"wrote {path.relative_to(compiler.BUILD_DIR.parent.parent.parent)}")
