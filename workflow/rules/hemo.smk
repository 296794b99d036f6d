# Hemodynamic digital twins (Med-Real2Sim): Simaan 2009 circulation, emulator, P-SSL, LVAD trial.
# Outputs under results/hemo/; see docs/hemo.md.


rule hemo_reference:
    output:
        plain=f"{RESULTS}/hemo/reference/simaan2009.json",
        lvad=f"{RESULTS}/hemo/reference/simaan2009_lvad10000.json",
    log:
        "logs/hemo_reference/hemo_reference.log",
    benchmark:
        "benchmarks/hemo_reference/hemo_reference.tsv"
    params:
        settings=settings("hemo"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CONDA_ENV
    shell:
        "pipeline hemo simulate --preset simaan2009 --json {output.plain} "
        "--settings {params.settings} --log {log} && "
        "pipeline hemo simulate --preset simaan2009 --lvad-speed 10000 --json {output.lvad} "
        "--settings {params.settings}"


rule hemo_campaign:
    output:
        h5=f"{RESULTS}/hemo/campaign.h5",
    log:
        "logs/hemo_campaign/hemo_campaign.log",
    benchmark:
        "benchmarks/hemo_campaign/hemo_campaign.tsv"
    params:
        settings=settings("hemo"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "pipeline hemo campaign --out {output.h5} --settings {params.settings} --log {log}"


rule hemo_emulator:
    input:
        h5=f"{RESULTS}/hemo/campaign.h5",
    output:
        model=f"{RESULTS}/hemo/models/emulator.pt",
        metrics=f"{RESULTS}/hemo/models/emulator.json",
    log:
        "logs/hemo_emulator/hemo_emulator.log",
    benchmark:
        "benchmarks/hemo_emulator/hemo_emulator.tsv"
    params:
        settings=settings("hemo"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "pipeline hemo emulator --campaign {input.h5} --out {output.model} "
        "--metrics {output.metrics} --settings {params.settings} --log {log}"


rule hemo_inverse:
    input:
        h5=f"{RESULTS}/hemo/campaign.h5",
        emulator=f"{RESULTS}/hemo/models/emulator.pt",
    output:
        pssl=f"{RESULTS}/hemo/models/pssl.pt",
        supervised=f"{RESULTS}/hemo/models/supervised.pt",
        report=f"{RESULTS}/hemo/models/identifiability.json",
        figure=report(
            f"{RESULTS}/hemo/models/identifiability.png",
            caption="../report/hemo_identifiability.rst",
            category="8. Hemodynamic twins",
        ),
    log:
        "logs/hemo_inverse/hemo_inverse.log",
    benchmark:
        "benchmarks/hemo_inverse/hemo_inverse.tsv"
    params:
        settings=settings("hemo"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "pipeline hemo inverse --campaign {input.h5} --emulator {input.emulator} "
        "--out-dir $(dirname {output.figure}) --settings {params.settings} --log {log}"


rule hemo_evaluate:
    input:
        h5=f"{RESULTS}/hemo/campaign.h5",
        pssl=f"{RESULTS}/hemo/models/pssl.pt",
        supervised=f"{RESULTS}/hemo/models/supervised.pt",
    output:
        metrics=f"{RESULTS}/hemo/eval/metrics.json",
        cohort=f"{RESULTS}/hemo/eval/cohort_FileList.csv",
        figure=report(
            f"{RESULTS}/hemo/eval/ef_recovery.png",
            caption="../report/hemo_ef.rst",
            category="8. Hemodynamic twins",
        ),
    log:
        "logs/hemo_evaluate/hemo_evaluate.log",
    benchmark:
        "benchmarks/hemo_evaluate/hemo_evaluate.tsv"
    params:
        settings=settings("hemo"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        CONDA_ENV
    shell:
        "pipeline hemo evaluate --campaign {input.h5} --models $(dirname {input.pssl}) "
        "--out-dir $(dirname {output.figure}) --settings {params.settings} --log {log}"


rule hemo_twins:
    input:
        csv=hemo_patients_csv,
        pssl=f"{RESULTS}/hemo/models/pssl.pt",
    output:
        parameters=f"{RESULTS}/hemo/twins/parameters.csv",
        trial=f"{RESULTS}/hemo/twins/lvad_trial.csv",
        summary=f"{RESULTS}/hemo/twins/summary.json",
        pv=report(
            f"{RESULTS}/hemo/twins/pv_loops.png",
            caption="../report/hemo_pv.rst",
            category="8. Hemodynamic twins",
        ),
        lvad=report(
            f"{RESULTS}/hemo/twins/lvad_trial.png",
            caption="../report/hemo_lvad.rst",
            category="8. Hemodynamic twins",
        ),
    log:
        "logs/hemo_twins/hemo_twins.log",
    benchmark:
        "benchmarks/hemo_twins/hemo_twins.tsv"
    params:
        settings=settings("hemo"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "pipeline hemo twins --csv {input.csv} --model {input.pssl} "
        "--out-dir $(dirname {output.pv}) --settings {params.settings} --log {log}"
