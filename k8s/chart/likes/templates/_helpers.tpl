{{/* The chart's name, for app.kubernetes.io/name (the likes pods' label). */}}
{{- define "likes.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the StatefulSet and prefix of the other objects: the release name when it already
holds the chart's name (release "likes": StatefulSet likes, pods likes-0..), else
release-chart. Pod names add "-N" and the StatefulSet a hash label: 52 characters leave room.
*/}}
{{- define "likes.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "likes.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects the likes pods: Services, PodDisruptionBudget, NetworkPolicy. */}}
{{- define "likes.selectorLabels" -}}
app.kubernetes.io/name: {{ include "likes.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object that is not an observability component. */}}
{{- define "likes.labels" -}}
helm.sh/chart: {{ include "likes.chart" . }}
{{ include "likes.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: likes
{{- end }}

{{/*
Labels of an observability component: (dict "root" $ "name" "jaeger"). Its pods carry
app.kubernetes.io/name: <name>; the NetworkPolicy lets "prometheus" scrape the nodes.
*/}}
{{- define "likes.componentSelectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "likes.componentLabels" -}}
helm.sh/chart: {{ include "likes.chart" .root }}
{{ include "likes.componentSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: observability
app.kubernetes.io/part-of: likes
{{- end }}

{{- define "likes.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The headless Service of peer discovery (LIKES_PEER_DNS, the StatefulSet's serviceName). */}}
{{- define "likes.peersService" -}}
{{- printf "%s-peers" (include "likes.fullname" .) }}
{{- end }}

{{- define "likes.secretName" -}}
{{- .Values.clusterSecret.existingSecret | default (printf "%s-cluster" (include "likes.fullname" .)) }}
{{- end }}

{{/* Where the nodes send traces: the value, else the chart's Jaeger, else nowhere (empty). */}}
{{- define "likes.otlpEndpoint" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- .Values.tracing.otlpEndpoint }}
{{- else if .Values.observability.enabled }}
{{- print "http://jaeger:4318" }}
{{- end }}
{{- end }}

{{/*
sha256 of a ConfigMap's data (keys in sorted order, values concatenated): a pod annotation
that changes with the mounted files, so that `helm upgrade` rolls the pods that read them.
*/}}
{{- define "likes.dataChecksum" -}}
{{- $all := "" }}
{{- range $key := keys . | sortAlpha }}
{{- $all = print $all (get $ $key) }}
{{- end }}
{{- $all | sha256sum }}
{{- end }}

{{/* The restricted Pod Security Standard, for a container. */}}
{{- define "likes.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Labels of the load generator's Job and its pod (templates/load-job.yaml). */}}
{{- define "likes.loadLabels" -}}
helm.sh/chart: {{ include "likes.chart" . }}
app.kubernetes.io/name: {{ include "likes.name" . }}-load
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: load
app.kubernetes.io/part-of: likes
{{- end }}
