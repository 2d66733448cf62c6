"""Where a team's description lives and which shape it has: shared by the program that publishes
it (infratech/program/platform/team_description.py) and the CLI that reads it
(infratech/cli/submit/description.py), which must not import the Pulumi program to know a name."""

SCHEMA = "infratech.io/team-description/v1"
CONFIGMAP = "infratech-team"  # in the team's namespace
DATA_KEY = "team.yaml"
READER = "infratech-team-reader"  # Role and RoleBinding: the team's groups may get that ConfigMap
