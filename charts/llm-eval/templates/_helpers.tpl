{{/*
Names and labels. The release name is the job's name: the Job, its Kueue Workload and its pod
are found by it (label infratech.io/job).
*/}}
{{- define "llm-eval.name" -}}
{{- .Release.Name -}}
{{- end -}}

{{- define "llm-eval.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Labels of every object and pod: who made it, which job, how sensitive its data is. */}}
{{- define "llm-eval.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: evaluation
infratech.io/job: {{ .Release.Name }}
infratech.io/data-classification: {{ .Values.dataClassification | quote }}
{{- with .Values.team }}
infratech.io/team: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The Kueue labels of the Job: its queue and, when set, its priority. */}}
{{- define "llm-eval.queueLabels" -}}
kueue.x-k8s.io/queue-name: {{ .Values.queue | quote }}
{{- with .Values.priorityClass }}
kueue.x-k8s.io/priority-class: {{ . | quote }}
{{- end }}
{{- end -}}
