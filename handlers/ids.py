"""Slack callback and action ids, shared by the blocks that carry them and their listeners."""

CREATE_MODAL = "assistant_create_modal"
OPEN_CREATE_MODAL = "open_create_modal"
CONFIRM_DELETE = "confirm_delete_assistant"
CANCEL_DELETE = "cancel_delete_assistant"
RESET_THREAD = "reset_thread"
REMOVE_FILE = "remove_file"
EMAIL_SEND = "email_send"
EMAIL_CANCEL = "email_cancel"

# Block ids inside the create modal.
NAME_BLOCK = "name"
INSTRUCTIONS_BLOCK = "instructions"
TOOLS_BLOCK = "tools"
FILES_BLOCK = "files"
MODEL_BLOCK = "model"
EFFORT_BLOCK = "reasoning_effort"

# Answers: feedback buttons and the "What went wrong?" modal.
FEEDBACK = "answer_feedback"
FEEDBACK_MODAL = "feedback_comment_modal"
FEEDBACK_COMMENT_BLOCK = "comment"

# App Home settings.
HOME_MODEL = "home_model"
HOME_EFFORT = "home_reasoning_effort"
HOME_TOOLS = "home_tools"
