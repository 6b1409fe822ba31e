"""Shared by the Python end-to-end tests: count checks, print each failure once, and close with
the 'N passed, N failed' line that CI reads."""


class Checks:
    def __init__(self):
        self.total = 0
        self.failures = []

    def check(self, name, ok, detail=""):
        self.total += 1
        if not ok:
            self.failures.append(name)
            print(f"FAIL: {name} {detail}"[:2000])
        return ok

    def finish(self):
        print(f"{self.total - len(self.failures)} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0
