# Workflow Python: config validation, names of hearts, campaigns and shards, input functions.
import json
import os
import shlex

from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

RESULTS = config["results"]


wildcard_constraints:
    heart="[A-Za-z0-9]+",
    campaign="[A-Za-z0-9]+",
    shard="[A-Za-z0-9]+-[0-9]+",
    network="[A-Za-z0-9_]+",


def settings(*sections):
    """Shell-quoted JSON of config sections (plus the seed) for a CLI's --settings."""
    value = {"seed": config["seed"]}
    for section in sections:
        value[section] = config[section]
    return shlex.quote(json.dumps(value, sort_keys=True))


# ---------------------------------------------------------------- anatomy
def parametric_hearts():
    return [f"param{i:03d}" for i in range(config["anatomy"]["parametric"]["count"])]


def mesh_hearts():
    return {m["name"]: m for m in config["anatomy"]["meshes"]}


def all_hearts():
    return parametric_hearts() + list(mesh_hearts())


def anatomy_source(wildcards):
    """CLI arguments that name where heart {heart} comes from."""
    meshes = mesh_hearts()
    if wildcards.heart in meshes:
        return f"--mesh {shlex.quote(meshes[wildcards.heart]['path'])}"
    index = int(wildcards.heart.removeprefix("param"))
    return f"--parametric {index}"


def anatomy_outdir(wildcards):
    return f"{RESULTS}/anatomy/{wildcards.heart}"


def anatomy_mesh_input(wildcards):
    meshes = mesh_hearts()
    return [meshes[wildcards.heart]["path"]] if wildcards.heart in meshes else []


# ---------------------------------------------------------------- targets
def get_final_outputs():
    outputs = expand(f"{RESULTS}/anatomy/{{heart}}/anatomy.h5", heart=all_hearts())
    outputs.append(f"{RESULTS}/cells/initial_states.h5")
    outputs += get_campaign_outputs()
    if config["campaigns"]:
        outputs += get_learn_outputs()
    if config["hemo"]["enabled"]:
        outputs += hemo_outputs()
    return outputs


# ---------------------------------------------------------------- simulate
def shard_heart(wildcards):
    """The heart of shard {shard}: its name up to the last '-' (shards are {heart}-{NNN})."""
    return wildcards.shard.rsplit("-", 1)[0]


def get_shard_anatomy(wildcards):
    return f"{RESULTS}/anatomy/{shard_heart(wildcards)}/anatomy.h5"


def shard_figures_dir(wildcards):
    return f"{RESULTS}/sims/{wildcards.campaign}/figures/{wildcards.shard}"


# ---------------------------------------------------------------- campaigns and dataset
from pipeline.campaign import design as campaign_design

# Shards of every campaign, computed from the config alone at DAG-parse time.
CAMPAIGN_SHARDS = {
    name: campaign_design.shard_names(config, name) for name in config["campaigns"]
}


def get_campaign_sims(wildcards):
    """Shard files of campaign {campaign}: the inputs of its dataset."""
    return expand(
        f"{RESULTS}/sims/{wildcards.campaign}/{{shard}}.h5",
        shard=CAMPAIGN_SHARDS[wildcards.campaign],
    )


def design_shard_settings(wildcards):
    """--settings of one shard's design: unchanged while the shard's rows are unchanged."""
    value = campaign_design.shard_settings(config, wildcards.campaign, wildcards.shard)
    return shlex.quote(json.dumps(value, sort_keys=True))


def design_table_settings(wildcards):
    value = campaign_design.table_settings(config, wildcards.campaign)
    return shlex.quote(json.dumps(value, sort_keys=True))


def dataset_settings(wildcards):
    value = {
        "seed": config["seed"],
        "campaigns": {wildcards.campaign: config["campaigns"][wildcards.campaign]},
    }
    return shlex.quote(json.dumps(value, sort_keys=True))


def get_campaign_outputs():
    """Design tables and datasets of every campaign."""
    outputs = []
    for name, shards in CAMPAIGN_SHARDS.items():
        outputs += [f"{RESULTS}/design/{name}.csv", f"{RESULTS}/dataset/{name}.h5"]
        # the figures (12-lead ECG, 3-D activation, Vm) of each campaign's first simulation
        outputs.append(f"{RESULTS}/sims/{name}/figures/{shards[0]}/ecg12.png")
    return outputs


# ---------------------------------------------------------------- learn
def learn_campaign():
    """Campaign whose dataset trains the networks: learn.campaign, else the first campaign."""
    name = config["learn"]["campaign"] or next(iter(config["campaigns"]), None)
    if name is None:
        raise ValueError("config: learning needs a campaign (campaigns: {...}, learn.campaign)")
    return name


def get_learn_dataset(wildcards):
    return f"{RESULTS}/dataset/{learn_campaign()}.h5"


def get_learn_anatomies(wildcards):
    """anatomy.h5 of every heart of the learning campaign (for the 3-D figure)."""
    hearts = config["campaigns"][learn_campaign()].get("anatomies") or all_hearts()
    return expand(f"{RESULTS}/anatomy/{{heart}}/anatomy.h5", heart=hearts)


def get_learn_metrics(wildcards):
    return expand(f"{RESULTS}/eval/{{network}}/metrics.json", network=config["learn"]["networks"])


def get_learn_outputs():
    """Models, evaluations and the summary of every configured network."""
    outputs = expand(f"{RESULTS}/models/{{network}}.pt", network=config["learn"]["networks"])
    outputs += get_learn_metrics(None)
    outputs.append(f"{RESULTS}/eval/summary.csv")
    return outputs


def models_dir(wildcards, output):
    """Folder of a network's checkpoint (its state and curves go there too)."""
    return os.path.dirname(output.model)


def eval_dir(wildcards, output):
    return os.path.dirname(output.metrics)


def summary_dir(wildcards, output):
    return os.path.dirname(output.table)


# ---------------------------------------------------------------- hemo (Med-Real2Sim twins)
def hemo_patients_csv(wildcards):
    """The patient CSV of the twins step: hemo.patients.csv, else the synthetic test cohort."""
    csv = config["hemo"].get("patients", {}).get("csv")
    return csv if csv else f"{RESULTS}/hemo/eval/cohort_FileList.csv"


def hemo_outputs():
    """Final outputs of the hemodynamic-twin stage (for rule all)."""
    return [
        f"{RESULTS}/hemo/reference/simaan2009.json",
        f"{RESULTS}/hemo/reference/simaan2009_lvad10000.json",
        f"{RESULTS}/hemo/models/emulator.json",
        f"{RESULTS}/hemo/models/identifiability.json",
        f"{RESULTS}/hemo/eval/metrics.json",
        f"{RESULTS}/hemo/twins/summary.json",
        f"{RESULTS}/hemo/twins/pv_loops.png",
        f"{RESULTS}/hemo/twins/lvad_trial.png",
    ]
