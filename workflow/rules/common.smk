# Workflow Python: config validation, names of hearts, campaigns and shards, input functions.
import json
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
    return outputs
