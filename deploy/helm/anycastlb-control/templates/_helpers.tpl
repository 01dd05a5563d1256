{{/*
The chart name, shortened to the 63 characters a label value allows.
*/}}
{{- define "anycastlb-control.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: the release name, plus the chart name unless the release name contains it.
*/}}
{{- define "anycastlb-control.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
chart label: name-version.
*/}}
{{- define "anycastlb-control.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object but the component; each object adds its own.
*/}}
{{- define "anycastlb-control.commonLabels" -}}
helm.sh/chart: {{ include "anycastlb-control.chart" . }}
app.kubernetes.io/name: {{ include "anycastlb-control.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: anycastlb
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of the server's objects.
*/}}
{{- define "anycastlb-control.labels" -}}
{{ include "anycastlb-control.commonLabels" . }}
app.kubernetes.io/component: control-plane
{{- end }}

{{/*
Selector labels of the server pods: stable across upgrades, and with the component, so that the
migration Job's pod (component: migration) is never behind the Service or counted by the PDB.
*/}}
{{- define "anycastlb-control.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anycastlb-control.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: control-plane
{{- end }}

{{/*
Labels of the migration Job and its pod.
*/}}
{{- define "anycastlb-control.migrationLabels" -}}
{{ include "anycastlb-control.commonLabels" . }}
app.kubernetes.io/component: migration
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "anycastlb-control.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "anycastlb-control.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: the same default as the controller chart's.
*/}}
{{- define "anycastlb-control.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The Secret with the database URL: databaseSecret.name, or in lab mode one the chart creates.
*/}}
{{- define "anycastlb-control.databaseSecretName" -}}
{{- if .Values.databaseSecret.name }}
{{- .Values.databaseSecret.name }}
{{- else if .Values.lab.createSecrets }}
{{- printf "%s-database" (include "anycastlb-control.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- fail "databaseSecret.name: name an existing Secret that holds the PostgreSQL URL (key databaseSecret.key, default \"url\"), e.g. kubectl create secret generic anycastlb-database --from-literal=url=postgresql://USER:PASSWORD@HOST:5432/DB" }}
{{- end }}
{{- end }}

{{/*
The Secret with the admin token: adminTokenSecret.name, or in lab mode one the chart creates.
*/}}
{{- define "anycastlb-control.adminTokenSecretName" -}}
{{- if .Values.adminTokenSecret.name }}
{{- .Values.adminTokenSecret.name }}
{{- else if .Values.lab.createSecrets }}
{{- printf "%s-admin-token" (include "anycastlb-control.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- fail "adminTokenSecret.name: name an existing Secret that holds the admin token (key adminTokenSecret.key, default \"token\"), e.g. kubectl create secret generic anycastlb-admin-token --from-literal=token=$(openssl rand -hex 32)" }}
{{- end }}
{{- end }}

{{/*
The migration Job's database Secret and key: its own when given, else the server's.
*/}}
{{- define "anycastlb-control.migrationDatabaseSecretName" -}}
{{- default (include "anycastlb-control.databaseSecretName" .) .Values.migrations.databaseSecret.name }}
{{- end }}
{{- define "anycastlb-control.migrationDatabaseSecretKey" -}}
{{- if .Values.migrations.databaseSecret.name }}
{{- .Values.migrations.databaseSecret.key }}
{{- else }}
{{- .Values.databaseSecret.key }}
{{- end }}
{{- end }}

{{/*
--listen HOST:PORT; an IPv6 address in brackets.
*/}}
{{- define "anycastlb-control.listen" -}}
{{- if contains ":" .Values.listenAddress }}
{{- printf "[%s]:%d" .Values.listenAddress (int .Values.port) }}
{{- else }}
{{- printf "%s:%d" .Values.listenAddress (int .Values.port) }}
{{- end }}
{{- end }}

{{/*
Hook annotations for what the migration Job needs before the release's own objects exist.
*/}}
{{- define "anycastlb-control.preHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- end }}
