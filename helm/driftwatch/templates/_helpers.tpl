{{/* Names, labels, and the engine configuration rendered from values. */}}

{{- define "driftwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftwatch.fullname" -}}
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

{{- define "driftwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "driftwatch.labels" -}}
helm.sh/chart: {{ include "driftwatch.chart" . }}
{{ include "driftwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftwatch
{{- end -}}

{{- define "driftwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "driftwatch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "driftwatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Argo Events names: an EventSource's Service is "<name>-eventsource-svc". */}}
{{- define "driftwatch.argo.webhookEventSource" -}}
{{- printf "%s-drift-webhook" (include "driftwatch.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- define "driftwatch.argo.kafkaEventSource" -}}
{{- printf "%s-drift-kafka" (include "driftwatch.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- define "driftwatch.argo.sensor" -}}
{{- printf "%s-retrain" (include "driftwatch.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "driftwatch.argo.sensorServiceAccount" -}}
{{- printf "%s-sensor" (include "driftwatch.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "driftwatch.argo.workflowServiceAccount" -}}
{{- printf "%s-workflow" (include "driftwatch.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "driftwatch.argo.webhookBase" -}}
{{- printf "http://%s-eventsource-svc.%s.svc:12000" (include "driftwatch.argo.webhookEventSource" .) .Release.Namespace -}}
{{- end -}}
{{- define "driftwatch.argo.webhookUrl" -}}
{{- printf "%s/drift" (include "driftwatch.argo.webhookBase" .) -}}
{{- end -}}
{{/* Where Alertmanager posts (argo.webhook.alertmanager.enabled; helm/alertmanager/alertmanager.yaml). */}}
{{- define "driftwatch.argo.alertmanagerUrl" -}}
{{- printf "%s/alertmanager" (include "driftwatch.argo.webhookBase" .) -}}
{{- end -}}

{{/*
Kafka client options the chart owns: SASL credentials as { env: … } references and TLS files
from their mounted Secret. The user's own options win where both set one.
*/}}
{{- define "driftwatch.kafkaSecretOptions" -}}
{{- $s := .Values.secrets -}}
{{- $o := dict -}}
{{- if $s.kafkaSasl.existingSecret -}}
{{- if $s.kafkaSasl.usernameKey -}}
{{- $_ := set $o "sasl.username" (dict "env" "DRIFTWATCH_KAFKA_USERNAME") -}}
{{- end -}}
{{- $_ := set $o "sasl.password" (dict "env" "DRIFTWATCH_KAFKA_PASSWORD") -}}
{{- end -}}
{{- if $s.kafkaTls.existingSecret -}}
{{- $dir := $s.kafkaTls.mountPath -}}
{{- if $s.kafkaTls.caKey -}}{{- $_ := set $o "ssl.ca.location" (printf "%s/ca.crt" $dir) -}}{{- end -}}
{{- if $s.kafkaTls.certKey -}}{{- $_ := set $o "ssl.certificate.location" (printf "%s/tls.crt" $dir) -}}{{- end -}}
{{- if $s.kafkaTls.keyKey -}}{{- $_ := set $o "ssl.key.location" (printf "%s/tls.key" $dir) -}}{{- end -}}
{{- if $s.kafkaTls.keyPasswordKey -}}
{{- $_ := set $o "ssl.key.password" (dict "env" "DRIFTWATCH_KAFKA_SSL_KEY_PASSWORD") -}}
{{- end -}}
{{- end -}}
{{- toJson $o -}}
{{- end -}}

{{/* A client's options plus the chart's: an option the user set keeps the user's value, whole. */}}
{{- define "driftwatch.withChartOptions" -}}
{{- $options := deepCopy (default dict (index . 0)) -}}
{{- range $k, $v := index . 1 -}}
{{- if not (hasKey $options $k) -}}{{- $_ := set $options $k $v -}}{{- end -}}
{{- end -}}
{{- toJson $options -}}
{{- end -}}

{{/*
Fails on a plain secret: a Kafka option whose name holds password, secret or key (file
locations and keytabs are paths, not secrets) must be a { env: … } or { file: … } reference.
*/}}
{{- define "driftwatch.refusePlainSecrets" -}}
{{- $where := index . 0 -}}
{{- $options := index . 1 -}}
{{- range $k, $v := $options -}}
{{- if and (regexMatch "(?i)(password|secret|key)" $k) (not (regexMatch "(?i)(\\.location|keytab)$" $k)) (not (kindIs "map" $v)) -}}
{{- fail (printf "%s.options.%s holds a secret in plain text, which would land in the ConfigMap: store it in a Kubernetes Secret and use secrets.kafkaSasl / secrets.kafkaTls, or extraEnv plus { env: VAR }" $where $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The engine's config.yaml, as a dict (toYaml it). */}}
{{- define "driftwatch.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $secretOptions := include "driftwatch.kafkaSecretOptions" . | fromJson -}}
{{- if $c.source -}}
{{- $options := include "driftwatch.withChartOptions" (list $c.source.options $secretOptions) | fromJson -}}
{{- include "driftwatch.refusePlainSecrets" (list "config.source" $options) -}}
{{- if $options -}}{{- $_ := set $c.source "options" $options -}}{{- end -}}
{{- end -}}
{{- $sinks := list -}}
{{- range $i, $sink := (default list $c.sinks) -}}
{{- $sink = deepCopy $sink -}}
{{- if eq (toString $sink.type) "kafka" -}}
{{- $options := include "driftwatch.withChartOptions" (list $sink.options $secretOptions) | fromJson -}}
{{- include "driftwatch.refusePlainSecrets" (list (printf "config.sinks[%d]" $i) $options) -}}
{{- if $options -}}{{- $_ := set $sink "options" $options -}}{{- end -}}
{{- end -}}
{{- if eq (toString $sink.type) "webhook" -}}
{{- if and (hasKey $sink "hmac_secret") (not (kindIs "map" $sink.hmac_secret)) (not (kindIs "invalid" $sink.hmac_secret)) -}}
{{- fail (printf "config.sinks[%d].hmac_secret holds a secret in plain text, which would land in the ConfigMap: set secrets.webhookHmac.existingSecret instead" $i) -}}
{{- end -}}
{{- if and $.Values.secrets.webhookHmac.existingSecret (not $sink.hmac_secret) -}}
{{- $_ := set $sink "hmac_secret" (dict "env" "DRIFTWATCH_WEBHOOK_HMAC") -}}
{{- end -}}
{{- end -}}
{{- $sinks = append $sinks $sink -}}
{{- end -}}
{{- if and .Values.argo.enabled .Values.argo.webhook.enabled .Values.argo.webhook.addSink -}}
{{- $argoSink := dict "type" "webhook" "name" "argo-events" "url" (include "driftwatch.argo.webhookUrl" .) -}}
{{- if .Values.secrets.webhookHmac.existingSecret -}}
{{- $_ := set $argoSink "hmac_secret" (dict "env" "DRIFTWATCH_WEBHOOK_HMAC") -}}
{{- end -}}
{{- $sinks = append $sinks $argoSink -}}
{{- end -}}
{{- $_ := set $c "sinks" $sinks -}}
{{- $_ := set $c "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port))) -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Argo Workflows variables written literally (Helm must not read them). */}}
{{- define "driftwatch.argo.var" -}}
{{- printf "{{%s}}" . -}}
{{- end -}}
