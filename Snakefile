# Cardiac electrical imaging: simulate hearts, record 12-lead ECGs, learn the inverse.
# This file is the table of contents; workflow Python lives in workflow/rules/common.smk.
from snakemake.utils import min_version

min_version("8.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/anatomy.smk"
include: "workflow/rules/cells.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/design.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/learn.smk"
include: "workflow/rules/hemo.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
