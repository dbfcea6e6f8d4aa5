{{/* Names and labels. */}}

{{- define "mailstore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mailstore.fullname" -}}
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

{{/* The targets, in dependency order, and the gateways among them. */}}
{{- define "mailstore.targets" -}}metadata blob imap pop3 lmtp{{- end }}
{{- define "mailstore.gateways" -}}imap pop3 lmtp{{- end }}

{{/* mailstore.component: name of a target's objects. Args: dict root target. */}}
{{- define "mailstore.component" -}}
{{- printf "%s-%s" (include "mailstore.fullname" .root | trunc 55 | trimSuffix "-") .target }}
{{- end }}

{{- define "mailstore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mailstore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mailstore.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "mailstore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mailstore
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Args: dict root target. */}}
{{- define "mailstore.componentLabels" -}}
{{ include "mailstore.labels" .root }}
app.kubernetes.io/component: {{ .target }}
{{- end }}

{{/* Args: dict root target. */}}
{{- define "mailstore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mailstore.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .target }}
{{- end }}

{{- define "mailstore.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Ports inside the pods. Listen addresses default to 127.0.0.1 in the
binary, so every one is set to 0.0.0.0:PORT here. */}}
{{- define "mailstore.ports" -}}
http: 9200
metadata: 9201
blob: 9202
imap: 1143
imaps: 1993
pop3: 1110
pop3s: 1995
lmtp: 1024
{{- end }}

{{/* Secret names. */}}
{{- define "mailstore.redisSecret" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}{{ else }}{{ include "mailstore.fullname" . }}-redis{{ end }}
{{- end }}
{{- define "mailstore.redisAuth" -}}
{{- if or .Values.redis.existingSecret .Values.redis.password }}true{{ end }}
{{- end }}
{{- define "mailstore.s3Secret" -}}
{{- if .Values.s3.existingSecret }}{{ .Values.s3.existingSecret }}{{ else }}{{ include "mailstore.fullname" . }}-s3{{ end }}
{{- end }}
{{- define "mailstore.s3Auth" -}}
{{- if or .Values.s3.existingSecret (and .Values.s3.accessKey .Values.s3.secretKey) }}true{{ end }}
{{- end }}
{{- define "mailstore.grpcSecret" -}}
{{- if .Values.grpc.existingSecret }}{{ .Values.grpc.existingSecret }}{{ else }}{{ include "mailstore.fullname" . }}-grpc{{ end }}
{{- end }}
{{- define "mailstore.grpcToken" -}}
{{- if or .Values.grpc.existingSecret .Values.grpc.token }}true{{ end }}
{{- end }}
{{- define "mailstore.tlsSecret" -}}
{{- if .Values.tls.existingSecret }}{{ .Values.tls.existingSecret }}{{ else }}{{ include "mailstore.fullname" . }}-tls{{ end }}
{{- end }}

{{/* Does target use the TLS certificate? Args: dict root target. */}}
{{- define "mailstore.usesTLS" -}}
{{- if and .root.Values.tls.enabled (has .target (list "imap" "pop3")) }}true{{ end }}
{{- end }}

{{/* mailstore.grpcAddress: dns:/// address of a headless gRPC Service, so
that gRPC's round_robin balances calls over its pods. Args: dict root target. */}}
{{- define "mailstore.grpcAddress" -}}
{{- $ports := include "mailstore.ports" .root | fromYaml -}}
{{- printf "dns:///%s.%s.svc.%s:%v" (include "mailstore.component" .) .root.Release.Namespace .root.Values.clusterDomain (get $ports .target) }}
{{- end }}

{{/* mailstore.config renders the -config file of one target: flag names
without the dash. Args: dict root target. */}}
{{- define "mailstore.config" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $t := .target -}}
{{- $ports := include "mailstore.ports" $root | fromYaml -}}
{{- $metaAddr := include "mailstore.grpcAddress" (dict "root" $root "target" "metadata") -}}
{{- $blobAddr := include "mailstore.grpcAddress" (dict "root" $root "target" "blob") -}}
{{- $c := dict
  "log.level" $v.log.level
  "log.format" $v.log.format
  "server.http-listen-address" (printf "0.0.0.0:%v" $ports.http)
-}}
{{- if or $v.grpc.token $v.grpc.existingSecret }}
{{- $_ := set $c "grpc.token-file" "/etc/mailstore/secrets/grpc/token" }}
{{- end }}
{{- if $v.grpc.tls.enabled }}
{{- $_ := set $c "grpc.tls.cert-file" "/etc/mailstore/grpc-tls/tls.crt" }}
{{- $_ := set $c "grpc.tls.key-file" "/etc/mailstore/grpc-tls/tls.key" }}
{{- $_ := set $c "grpc.tls.ca-file" "/etc/mailstore/grpc-tls/ca.crt" }}
{{- end }}
{{- if $v.tracing.otlpEndpoint }}
{{- $_ := set $c "tracing.otlp-endpoint" $v.tracing.otlpEndpoint }}
{{- $_ := set $c "tracing.otlp-insecure" $v.tracing.insecure }}
{{- $_ := set $c "tracing.sample-ratio" $v.tracing.sampleRatio }}
{{- end }}
{{- if eq $t "metadata" }}
{{- $_ := set $c "metadata.listen-address" (printf "0.0.0.0:%v" $ports.metadata) }}
{{- $_ := set $c "metadata.backend" "redis" }}
{{- $_ := set $c "metadata.redis.addrs" (join "," $v.redis.addrs) }}
{{- $_ := set $c "metadata.redis.cluster" (eq $v.redis.mode "cluster") }}
{{- if eq $v.redis.mode "sentinel" }}
{{- $_ := set $c "metadata.redis.master-name" $v.redis.masterName }}
{{- end }}
{{- if and (ne $v.redis.mode "cluster") (gt (int $v.redis.db) 0) }}
{{- $_ := set $c "metadata.redis.db" (int $v.redis.db) }}
{{- end }}
{{- if $v.redis.username }}
{{- $_ := set $c "metadata.redis.username" $v.redis.username }}
{{- end }}
{{- if include "mailstore.redisAuth" $root }}
{{- $_ := set $c "metadata.redis.password-file" "/etc/mailstore/secrets/redis/password" }}
{{- end }}
{{- $_ := set $c "metadata.redis.tls" $v.redis.tls }}
{{- if $v.redis.keyPrefix }}
{{- $_ := set $c "metadata.redis.key-prefix" $v.redis.keyPrefix }}
{{- end }}
{{- /* The sweeper and `mailctl account recover` read and delete blobs. */}}
{{- $_ := set $c "blob.address" $blobAddr }}
{{- /* The POP3 reaper applies the same server-wide policy as the gateway. */}}
{{- $_ := set $c "pop3.keep" $v.pop3.keep }}
{{- else if eq $t "blob" }}
{{- $_ := set $c "blob.listen-address" (printf "0.0.0.0:%v" $ports.blob) }}
{{- $_ := set $c "blob.backend" "s3" }}
{{- $_ := set $c "blob.s3.endpoint" $v.s3.endpoint }}
{{- $_ := set $c "blob.s3.bucket" $v.s3.bucket }}
{{- $_ := set $c "blob.s3.region" $v.s3.region }}
{{- $_ := set $c "blob.s3.path-style" $v.s3.pathStyle }}
{{- $_ := set $c "blob.s3.insecure" $v.s3.insecure }}
{{- if $v.s3.prefix }}
{{- $_ := set $c "blob.s3.prefix" $v.s3.prefix }}
{{- end }}
{{- if include "mailstore.s3Auth" $root }}
{{- $_ := set $c "blob.s3.access-key-file" "/etc/mailstore/secrets/s3/access-key" }}
{{- $_ := set $c "blob.s3.secret-key-file" "/etc/mailstore/secrets/s3/secret-key" }}
{{- end }}
{{- else }}
{{- $_ := set $c "metadata.address" $metaAddr }}
{{- $_ := set $c "blob.address" $blobAddr }}
{{- $_ := set $c "server.drain-window" (printf "%vs" $v.drain.windowSeconds) }}
{{- with $v.proxyProtocol.trustedCIDRs }}
{{- $_ := set $c "server.proxy-protocol.trusted-cidrs" (join "," .) }}
{{- end }}
{{- if eq $t "imap" }}
{{- $_ := set $c "imap.listen-address" (printf "0.0.0.0:%v" $ports.imap) }}
{{- $_ := set $c "imap.tls-listen-address" (printf "0.0.0.0:%v" $ports.imaps) }}
{{- if $v.tls.enabled }}
{{- $_ := set $c "imap.tls.cert-file" "/etc/mailstore/tls/tls.crt" }}
{{- $_ := set $c "imap.tls.key-file" "/etc/mailstore/tls/tls.key" }}
{{- end }}
{{- $_ := set $c "ingest.max-message-size" (int64 $v.ingest.maxMessageSize) }}
{{- $_ := set $c "ingest.spool-dir" "/spool" }}
{{- else if eq $t "pop3" }}
{{- $_ := set $c "pop3.listen-address" (printf "0.0.0.0:%v" $ports.pop3) }}
{{- $_ := set $c "pop3.tls-listen-address" (printf "0.0.0.0:%v" $ports.pop3s) }}
{{- if $v.tls.enabled }}
{{- $_ := set $c "pop3.tls.cert-file" "/etc/mailstore/tls/tls.crt" }}
{{- $_ := set $c "pop3.tls.key-file" "/etc/mailstore/tls/tls.key" }}
{{- end }}
{{- $_ := set $c "pop3.keep" $v.pop3.keep }}
{{- else if eq $t "lmtp" }}
{{- $_ := set $c "lmtp.listen-address" (printf "0.0.0.0:%v" $ports.lmtp) }}
{{- $_ := set $c "ingest.max-message-size" (int64 $v.ingest.maxMessageSize) }}
{{- $_ := set $c "ingest.spool-dir" "/spool" }}
{{- end }}
{{- end }}
{{- $c = mergeOverwrite $c (deepCopy $v.config) (deepCopy (get $v $t).config) }}
{{- toYaml $c }}
{{- end }}
