{{/*
Names and labels. The release name names the Deployment and the job (label infratech.io/job);
the Service is the platform's gateway in its namespace (see llm-serve.serviceName).
*/}}
{{- define "llm-serve.name" -}}
{{- .Release.Name -}}
{{- end -}}

{{/* The Service: service.name, else the gateway the platform's Ingress routes to when in its namespace, else the release name. */}}
{{- define "llm-serve.serviceName" -}}
{{- if .Values.service.name -}}
{{- .Values.service.name -}}
{{- else if eq .Release.Namespace .Values.service.gatewayNamespace -}}
{{- .Values.service.gatewayName -}}
{{- else -}}
{{- .Release.Name -}}
{{- end -}}
{{- end -}}

{{- define "llm-serve.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* What selects the replicas: stable across upgrades. */}}
{{- define "llm-serve.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object and pod: who made it, which job, how sensitive its data is. */}}
{{- define "llm-serve.labels" -}}
{{ include "llm-serve.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
infratech.io/job: {{ .Release.Name }}
infratech.io/data-classification: {{ .Values.dataClassification | quote }}
{{- with .Values.team }}
infratech.io/team: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The restricted Pod Security profile, for a container. */}}
{{- define "llm-serve.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
