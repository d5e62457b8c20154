"""Project import rules (``kei import project``): manifests read into module facts, the
trait matcher's table and score, doc sections as skills, the plan and the gap report.

Pure: the walker, the parsers of source code and the clone live in
``kei.app.importers.project``; what they find arrives here as values.
"""
