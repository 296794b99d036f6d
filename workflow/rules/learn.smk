rule train:
    input:
        dataset=get_learn_dataset,
    output:
        model=f"{RESULTS}/models/{{network}}.pt",
        curves=f"{RESULTS}/models/{{network}}.curves.csv",
        figure=report(
            f"{RESULTS}/models/{{network}}.curves.png",
            caption="../report/learn_curves.rst",
            category="6. Learning",
            subcategory="{network}",
        ),
    log:
        "logs/train/{network}.log",
    benchmark:
        "benchmarks/train/{network}.tsv"
    params:
        out=models_dir,
        settings=settings("learn"),
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
    conda:
        CONDA_ENV
    shell:
        "pipeline train --network {wildcards.network} --dataset {input.dataset} "
        "--out {params.out} --resume --no-progress --threads {threads} "
        "$PIPELINE_LEARN_RUN_ARGS --settings {params.settings} --log {log}"


rule evaluate:
    input:
        model=f"{RESULTS}/models/{{network}}.pt",
        dataset=get_learn_dataset,
        anatomy=get_learn_anatomies,
    output:
        metrics=f"{RESULTS}/eval/{{network}}/metrics.json",
        interpolated=f"{RESULTS}/eval/{{network}}/metrics_interpolated.json",
        ecg=report(
            f"{RESULTS}/eval/{{network}}/ecg.png",
            caption="../report/learn_ecg.rst",
            category="6. Learning",
            subcategory="{network}",
        ),
        maps=report(
            f"{RESULTS}/eval/{{network}}/activation_maps.png",
            caption="../report/learn_maps.rst",
            category="6. Learning",
            subcategory="{network}",
        ),
        maps3d=report(
            f"{RESULTS}/eval/{{network}}/activation_3d.png",
            caption="../report/learn_maps3d.rst",
            category="6. Learning",
            subcategory="{network}",
        ),
        boxes=report(
            f"{RESULTS}/eval/{{network}}/error_boxplot.png",
            caption="../report/learn_errors.rst",
            category="6. Learning",
            subcategory="{network}",
        ),
        traces=report(
            f"{RESULTS}/eval/{{network}}/vm_traces.png",
            caption="../report/learn_traces.rst",
            category="6. Learning",
            subcategory="{network}",
        ),
    log:
        "logs/evaluate/{network}.log",
    benchmark:
        "benchmarks/evaluate/{network}.tsv"
    params:
        out=eval_dir,
        settings=settings("learn"),
    threads: 2
    resources:
        mem_mb=16000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "pipeline evaluate --model {input.model} --dataset {input.dataset} "
        "--anatomy {input.anatomy} --out {params.out} "
        "--threads {threads} $PIPELINE_LEARN_RUN_ARGS --settings {params.settings} --log {log}"


rule report:
    input:
        metrics=get_learn_metrics,
    output:
        table=report(
            f"{RESULTS}/eval/summary.csv",
            caption="../report/learn_summary.rst",
            category="6. Learning",
        ),
        figure=report(
            f"{RESULTS}/eval/summary.png",
            caption="../report/learn_summary.rst",
            category="6. Learning",
        ),
    log:
        "logs/report/summary.log",
    benchmark:
        "benchmarks/report/summary.tsv"
    params:
        out=summary_dir,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CONDA_ENV
    shell:
        "pipeline eval-summary --metrics {input.metrics} --out {params.out} --log {log}"
