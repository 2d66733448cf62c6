{{/*
Names and labels. The release name is the job's name: the TrainJob, its Kueue Workload and its
pods are found by it (label infratech.io/job).
*/}}
{{- define "llm-train.name" -}}
{{- .Release.Name -}}
{{- end -}}

{{- define "llm-train.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Labels of every object and pod: who made it, which job, how sensitive its data is. */}}
{{- define "llm-train.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: trainer
infratech.io/job: {{ .Release.Name }}
infratech.io/data-classification: {{ .Values.dataClassification | quote }}
{{- with .Values.team }}
infratech.io/team: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The labels and the team's queue: the TrainJob, its JobSet, Jobs and pods all carry them. */}}
{{- define "llm-train.queuedLabels" -}}
{{ include "llm-train.labels" . }}
kueue.x-k8s.io/queue-name: {{ .Values.queue | quote }}
{{- end -}}

{{/* The restricted Pod Security profile, for a container. */}}
{{- define "llm-train.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The trainer's command line: launcher, module, recipe, run directory, checkpoints, data, overrides. */}}
{{- define "llm-train.command" -}}
{{- $cmd := list -}}
{{- range .Values.command.launcher }}{{ $cmd = append $cmd . }}{{ end -}}
{{- range .Values.command.launcherArgs }}{{ $cmd = append $cmd (tpl . $) }}{{ end -}}
{{- $cmd = concat $cmd (list "-m" .Values.command.module "--recipe" .Values.recipe) -}}
{{- $cmd = append $cmd (printf "run.dir=%s" .Values.checkpoint.runDir) -}}
{{- $cmd = append $cmd (printf "checkpoint.upload=%s" .Values.checkpoint.uri) -}}
{{- with .Values.dataPath }}{{ $cmd = append $cmd (printf "data.path=%s" .) }}{{ end -}}
{{- range $key := keys .Values.recipeOverrides | sortAlpha }}
{{- $cmd = append $cmd (printf "%s=%v" $key (index $.Values.recipeOverrides $key)) -}}
{{- end -}}
{{- range .Values.extraArgs }}{{ $cmd = append $cmd . }}{{ end -}}
{{- toJson $cmd -}}
{{- end -}}
