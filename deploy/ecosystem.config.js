// pm2 ecosystem file: pm2 start deploy/ecosystem.config.js
// pm2 stops apps with SIGINT, which orchestrator treats like SIGTERM (drain, then stop workers).
// kill_timeout must exceed [limits] shutdown_grace, or pm2 SIGKILLs the daemon mid-drain.
module.exports = {
  apps: [
    {
      name: "orchestrator",
      script: "/usr/local/bin/orchestrator",
      args: ["watch", "--config", "config/orchestrator.toml"],
      cwd: __dirname + "/..",
      interpreter: "none",
      kill_timeout: 60000,
      autorestart: true,
      max_restarts: 10,
      restart_delay: 2000,
    },
  ],
};
