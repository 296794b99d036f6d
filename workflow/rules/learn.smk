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


rule predict_recording:
    input:
        model=f"{RESULTS}/models/{{network}}.pt",
        dataset=get_learn_dataset,
        anatomy=get_learn_anatomies,
        ecg=get_patient_recording,
    output:
        json=f"{RESULTS}/patients/{{network}}/{{record}}/activation.json",
        csv=f"{RESULTS}/patients/{{network}}/{{record}}/activation.csv",
        bullseye=report(
            f"{RESULTS}/patients/{{network}}/{{record}}/bullseye.png",
            caption="../report/patients.rst",
            category="7. Patients",
            subcategory="{record}",
        ),
    log:
        "logs/patients/{network}/{record}.log",
    benchmark:
        "benchmarks/patients/{network}/{record}.tsv"
    params:
        ecg=patient_recording_arg,
        out=lambda wildcards, output: os.path.dirname(output.json),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        CONDA_ENV
    shell:
        "pipeline predict --model {input.model} --ecg {params.ecg} --out {params.out} "
        "--dataset {input.dataset} --anatomy {input.anatomy} --beats-figure --threads {threads} "
        "--log {log}"


rule learning_curve:
    input:
        dataset=get_learn_dataset,
    output:
        json=f"{RESULTS}/eval/learning_curve/{{network}}/learning_curve.json",
        figure=report(
            f"{RESULTS}/eval/learning_curve/{{network}}/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="6. Learning",
            subcategory="learning curve",
        ),
    log:
        "logs/learning_curve/{network}.log",
    benchmark:
        "benchmarks/learning_curve/{network}.tsv"
    params:
        out=lambda wildcards, output: os.path.dirname(output.json),
        sizes=learning_curve_sizes,
        settings=settings("learn"),
    threads: 2
    resources:
        mem_mb=16000,
        runtime=1440,
    conda:
        CONDA_ENV
    shell:
        "pipeline learning-curve --network {wildcards.network} --dataset {input.dataset} "
        "--sizes {params.sizes} --out {params.out} --threads {threads} "
        "$PIPELINE_LEARN_RUN_ARGS --settings {params.settings} --log {log}"


rule adapt:
    input:
        model=f"{RESULTS}/models/{{network}}.pt",
        dataset=get_learn_dataset,
    output:
        json=f"{RESULTS}/eval/adapt/{{network}}/adapt.json",
        model=f"{RESULTS}/eval/adapt/{{network}}/{{network}}.adapted.pt",
    log:
        "logs/adapt/{network}.log",
    benchmark:
        "benchmarks/adapt/{network}.tsv"
    params:
        out=lambda wildcards, output: os.path.dirname(output.json),
        options=adapt_options,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        CONDA_ENV
    shell:
        "pipeline adapt --model {input.model} --dataset {input.dataset} --out {params.out} "
        "{params.options} --threads {threads} --log {log}"
