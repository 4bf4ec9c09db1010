{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "skiff.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "skiff.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "skiff.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "skiff.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "skiff.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The NATS chart's full name, as that chart computes it. */}}
{{- define "skiff.natsFullname" -}}
{{- $nats := .Values.nats | default dict -}}
{{- if $nats.fullnameOverride -}}
{{- $nats.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "nats" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "skiff.natsUrl" -}}
{{- if .Values.natsUrl -}}
{{- .Values.natsUrl -}}
{{- else if .Values.nats.enabled -}}
{{- printf "nats://%s.%s.svc:4222" (include "skiff.natsFullname" .) .Release.Namespace -}}
{{- else -}}
{{- fail "natsUrl is required when nats.enabled is false" -}}
{{- end -}}
{{- end -}}

{{- define "skiff.natsSecretName" -}}
{{- printf "%s-nats-user-%s" (include "skiff.fullname" .root) .identity | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "skiff.llmSecretName" -}}
{{- default (printf "%s-llm" (include "skiff.fullname" .)) .Values.llm.existingSecret -}}
{{- end -}}

{{- define "skiff.hasLlmKey" -}}
{{- if or .Values.llm.apiKey .Values.llm.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "skiff.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The conversion loop ------------------------------------------------------------------ */}}

{{/* The flywheel image: the Dockerfile's `flywheel` target, by default <image>:<tag>-flywheel. */}}
{{- define "skiff.flywheelImage" -}}
{{- $f := .Values.flywheel.image -}}
{{- $tag := default (printf "%s-flywheel" (default .Chart.AppVersion .Values.image.tag)) $f.tag -}}
{{- printf "%s:%s" (default .Values.image.repository $f.repository) $tag -}}
{{- end -}}

{{/* The training CronJob's name, and the one-off Job's before its hash: at most 51 characters
(a CronJob's name may have 52), the fullname shortened rather than the domain cut off. */}}
{{- define "skiff.flywheelName" -}}
{{- $domain := index (splitList "." .Values.flywheel.train.task) 0 -}}
{{- printf "%s-flywheel-%s" (include "skiff.fullname" . | trunc 32 | trimSuffix "-") $domain -}}
{{- end -}}

{{- define "skiff.adaptersClaim" -}}
{{- default (printf "%s-flywheel-adapters" (include "skiff.fullname" .)) .Values.flywheel.adapters.existingClaim -}}
{{- end -}}

{{/* The adapters volume (a pod's `volumes` entry); .readOnly for the workers and SGLang. */}}
{{- define "skiff.adaptersVolume" -}}
- name: adapters
  persistentVolumeClaim:
    claimName: {{ include "skiff.adaptersClaim" .root }}
    {{- if .readOnly }}
    readOnly: true
    {{- end }}
{{- end -}}

{{/* Its mount: the same path everywhere, since model cards name adapters by absolute path. */}}
{{- define "skiff.adaptersMount" -}}
- name: adapters
  mountPath: {{ .root.Values.flywheel.adapters.mountPath }}
  {{- if .readOnly }}
  readOnly: true
  {{- end }}
{{- end -}}

{{/* Labels ----------------------------------------------------------------------------- */}}

{{- define "skiff.selectorLabels" -}}
app.kubernetes.io/name: {{ include "skiff.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "skiff.labels" -}}
helm.sh/chart: {{ include "skiff.chart" .root }}
{{ include "skiff.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: skiff
{{- end -}}

{{/* Pieces of a service pod ----------------------------------------------------------- */}}

{{/* Env every Skiff service gets: NATS URL and its identity's credentials, logs, OTel. */}}
{{- define "skiff.commonEnv" -}}
- name: SKIFF_NATS_URL
  value: {{ include "skiff.natsUrl" .root | quote }}
- name: SKIFF_NATS_USER
  value: {{ .identity | quote }}
- name: SKIFF_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "skiff.natsSecretName" . }}
      key: password
- name: SKIFF_LOG_FORMAT
  value: json
- name: SKIFF_METRICS_PORT
  value: {{ .root.Values.metrics.port | quote }}
{{- if .root.Values.otel.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .root.Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .root.Values.otel.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "skiff-%s" .component | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.namespace=skiff,k8s.namespace.name=%s" .root.Release.Namespace | quote }}
{{- end }}
{{- end -}}

{{/* `name: value` pairs as container env. */}}
{{- define "skiff.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "skiff.probes" -}}
{{- $probes := .Values.probes -}}
{{- range $kind := list "startup" "liveness" "readiness" }}
{{- $probe := index $probes $kind }}
{{- if $probe.enabled }}
{{ $kind }}Probe:
  httpGet:
    path: {{ $probe.path }}
    port: metrics
  periodSeconds: {{ $probe.periodSeconds }}
  timeoutSeconds: {{ $probe.timeoutSeconds }}
  failureThreshold: {{ $probe.failureThreshold }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The scheduling block shared by every pod spec: node selector, tolerations, affinity. */}}
{{- define "skiff.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A Skiff service Deployment. Parameters: root, component, identity (NATS user), command,
spec (replicas, resources, env, nodeSelector, tolerations, affinity), extraEnv (YAML list),
strategy, volumes and volumeMounts (YAML lists, optional), replicas (omit to leave to a scaler).
*/}}
{{- define "skiff.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ printf "%s-%s" (include "skiff.fullname" $root) .component | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "skiff.labels" . | nindent 4 }}
spec:
  {{- if not .scaled }}
  replicas: {{ .spec.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "skiff.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "skiff.labels" . | nindent 8 }}
    spec:
      serviceAccountName: {{ include "skiff.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 45
      containers:
        - name: {{ .component }}
          image: {{ include "skiff.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml .command | nindent 12 }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
          env:
            {{- include "skiff.commonEnv" . | nindent 12 }}
            {{- with .extraEnv }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with .spec.env }}
            {{- include "skiff.extraEnv" . | trim | nindent 12 }}
            {{- end }}
          {{- with (include "skiff.probes" $root | trim) }}
          {{- . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml .spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .volumeMounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with (include "skiff.scheduling" .spec | trim) }}
      {{- . | nindent 6 }}
      {{- end }}
{{- end -}}

{{/* One domain worker's settings: workers.* overlaid with workers.overrides.<domain>. */}}
{{- define "skiff.worker" -}}
{{- $workers := .root.Values.workers -}}
{{- $base := pick $workers "replicas" "engine" "resources" "env" "nodeSelector" "tolerations" "affinity" "autoscaling" | deepCopy -}}
{{- $override := index $workers.overrides .domain | default dict | deepCopy -}}
{{- mergeOverwrite $base $override | toYaml -}}
{{- end -}}
