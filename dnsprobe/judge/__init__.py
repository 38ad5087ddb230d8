"""Judge stage: behaviour checks, SLO gates, likely causes (rules), the failure-mode finding and JUnit,
computed in one place for `dnsprobe run`, `dnsprobe report` and `bench report`.
"""
