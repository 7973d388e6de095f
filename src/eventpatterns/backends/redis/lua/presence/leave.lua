-- leave: ARGV[4] channel, ARGV[5] member, ARGV[6] connection.
-- Reply: 1 when it was the member's last connection (leave published), else 0.
sweep()
return remove(ARGV[4], ARGV[5], ARGV[6], false)
