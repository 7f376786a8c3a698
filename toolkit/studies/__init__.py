"""What is specific to one study: its readers, arguments and reporters (Weibo, ratings, multi-task, MLM)."""
