# Workflow Python: config validation, names of hearts, campaigns and shards, input functions.
import json
import os
import shlex

from snakemake.utils import validate

from pipeline.campaign import design as campaign_design
from pipeline.config import RUN_KEYS, resolve, run_options, science_settings
from pipeline.naming import parametric_heart, parametric_index, shard_heart
from pipeline.relations import check_relations, recording_input
from pipeline.settings import SimulateSettings
from pipeline.simulate.calibration import calibration_mode, calibration_settings


validate(config, "../schemas/config.schema.yaml")
check_relations(config)  # keys against each other (campaign vs cells grid, ...), before any job

RESULTS = config["results"]
# The software environment of every rule (snakemake --use-conda), relative to the rule files.
# Not Snakemake's global `conda:` directive: that one injects the environment into the
# Snakemake process only, and `snakemake --lint` (9.x) still asks for one per rule.
CONDA_ENV = "../../envs/pipeline.yaml"


wildcard_constraints:
    heart="[A-Za-z0-9]+",
    campaign="[A-Za-z0-9]+",
    shard="[A-Za-z0-9]+-[0-9]+",
    network="[A-Za-z0-9_]+",
    record="[A-Za-z0-9_-]+",


def settings(*sections):
    """Shell-quoted JSON of config sections (plus the seed) for a CLI's --settings.

    Science only: the sections' run settings (pipeline.config.RUN_KEYS: device, compile,
    batch size, dtype) are left out, so changing one does not rerun jobs.
    """
    return shlex.quote(json.dumps(science_settings(config, *sections), sort_keys=True))


# Run settings reach the CLIs as options (--device cpu --no-compile ...) in environment
# variables that the shell commands expand ($PIPELINE_SIMULATE_RUN_ARGS): neither params
# nor the shell template change with them, so they trigger no rerun, and `snakemake --lint`
# accepts them (it flags a global {VARIABLE} in a shell command). Every job, local or on a
# cluster node, parses this file and sets them again.
RUN_ARGS = {
    section: " ".join(shlex.quote(o) for o in run_options(config, section))
    for section in RUN_KEYS
}
for _section, _args in RUN_ARGS.items():
    os.environ[f"PIPELINE_{_section.upper()}_RUN_ARGS"] = _args


# ---------------------------------------------------------------- anatomy
def parametric_hearts():
    return [parametric_heart(i) for i in range(config["anatomy"]["parametric"]["count"])]


def mesh_hearts():
    return {m["name"]: m for m in config["anatomy"]["meshes"]}


def all_hearts():
    return parametric_hearts() + list(mesh_hearts())


def anatomy_source(wildcards):
    """CLI arguments that name where heart {heart} comes from."""
    meshes = mesh_hearts()
    if wildcards.heart in meshes:
        return f"--mesh {shlex.quote(meshes[wildcards.heart]['path'])}"
    return f"--parametric {parametric_index(wildcards.heart)}"


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
        outputs += get_patients_outputs()
    if config["hemo"]["enabled"]:
        outputs += hemo_outputs()
    return outputs


# ---------------------------------------------------------------- simulate
def get_shard_anatomy(wildcards):
    return f"{RESULTS}/anatomy/{shard_heart(wildcards.shard)}/anatomy.h5"


# The reaction-eikonal mode's finer eikonal grid (simulate.eikonal_resolution_mm), if any.
_SIMULATE = resolve(config)["simulate"]
# It is used only where finer than the simulation grid (SimulateSettings.eikonal_grid_mm).
FINE_EIKONAL = SimulateSettings.from_config(_SIMULATE).eikonal_grid_mm(
    resolve(config)["anatomy"]["resolution_mm"]) is not None


def get_shard_eikonal_anatomy(wildcards):
    """The heart on the eikonal's finer grid, or nothing."""
    if not FINE_EIKONAL:
        return []
    return f"{RESULTS}/anatomy/{shard_heart(wildcards.shard)}/eikonal/anatomy.h5"


def eikonal_anatomy_option(wildcards, input):
    """`--eikonal-anatomy FILE` of a shard's `pipeline simulate`, or nothing."""
    return (f"--eikonal-anatomy {shlex.quote(input.eikonal_anatomy)}"
            if input.eikonal_anatomy else "")


# The CV calibration of a heart's monodomain shards, found once per campaign and heart
# (results/calibration/{campaign}/{heart}.json); the reaction-eikonal model needs none.
CALIBRATE = calibration_mode(resolve(config)["simulate"]) is not None


def get_shard_calibration(wildcards):
    """The calibration file a shard reads: none unless the settings ask for one."""
    if not CALIBRATE:
        return []
    heart = shard_heart(wildcards.shard)
    return f"{RESULTS}/calibration/{wildcards.campaign}/{heart}.json"


def calibration_option(wildcards, input):
    """`--calibration FILE` of a shard's `pipeline simulate`, or nothing."""
    return f"--calibration {shlex.quote(input.calibration)}" if input.calibration else ""


def calibrate_settings(wildcards):
    """--settings of a campaign's calibration: only the keys the calibration depends on."""
    value = calibration_settings(config, wildcards.campaign)
    return shlex.quote(json.dumps(value, sort_keys=True))


def shard_figures_dir(wildcards):
    return f"{RESULTS}/sims/{wildcards.campaign}/figures/{wildcards.shard}"


# ---------------------------------------------------------------- campaigns and dataset
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


# ---------------------------------------------------------------- patients
def patients_network():
    """The network that predicts on the recordings: patients.network, else the last trained."""
    return config["patients"]["network"] or config["learn"]["networks"][-1]


def get_patient_recording(wildcards):
    """The file of recording {record} (a WFDB record's header)."""
    return recording_input(config["patients"]["recordings"][wildcards.record])


def patient_recording_arg(wildcards):
    """The path of recording {record} as pipeline predict takes it (a WFDB record name)."""
    return config["patients"]["recordings"][wildcards.record]


def get_patients_outputs():
    """Predictions on every configured recording, and the enabled learning curve and P-SSL."""
    pat = config["patients"]
    outputs = []
    if pat["recordings"]:
        outputs += expand(
            f"{RESULTS}/patients/{patients_network()}/{{record}}/activation.json",
            record=list(pat["recordings"]),
        )
    if pat["learning_curve"]["enabled"]:
        lc = pat["learning_curve"]["network"]
        outputs.append(f"{RESULTS}/eval/learning_curve/{lc}/learning_curve.json")
    if pat["adapt"]["enabled"]:
        outputs.append(f"{RESULTS}/eval/adapt/{pat['adapt']['network']}/adapt.json")
    return outputs


def adapt_options(wildcards):
    """pipeline adapt's options from patients.adapt (and the seed)."""
    ad = config["patients"]["adapt"]
    keys = ("emulator_epochs", "steps", "lr", "anchor", "noise", "mains", "wander", "gain_sd")
    opts = [f"--{k.replace('_', '-')} {ad[k]}" for k in keys]
    return " ".join(opts + [f"--seed {config['seed']}"])


def learning_curve_sizes(wildcards):
    return " ".join(str(f) for f in config["patients"]["learning_curve"]["sizes"])


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
