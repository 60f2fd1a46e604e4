#!/bin/sh
# Runs once at first boot (cloud-init). Jupyter listens on localhost only: use an SSH tunnel.
set -eu
apt-get update -q
apt-get install -y -q python3-pip python3-venv
python3 -m venv /opt/jupyter
/opt/jupyter/bin/pip install -q jupyterlab
cat >/etc/systemd/system/jupyter.service <<'UNIT'
[Unit]
Description=JupyterLab on localhost
After=network-online.target

[Service]
User=ubuntu
WorkingDirectory=/home/ubuntu
ExecStart=/opt/jupyter/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=8888
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now jupyter.service
