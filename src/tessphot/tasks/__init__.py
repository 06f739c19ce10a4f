"""The task list ``todo.sqlite``: its layout, writing it, and handing out its tasks."""

from tessphot.tasks.constraints import build_constraints
from tessphot.tasks.manager import TaskManager
from tessphot.tasks.result import FALLBACK_TEXT, SWITCH_TEXT, TaskResult
from tessphot.tasks.schema import TODO_FILENAME, TodoFileError, cbv_area, write_todolist
from tessphot.tasks.status import STATUS

__all__ = [
    "STATUS",
    "FALLBACK_TEXT",
    "SWITCH_TEXT",
    "TODO_FILENAME",
    "TaskManager",
    "TaskResult",
    "TodoFileError",
    "build_constraints",
    "cbv_area",
    "write_todolist",
]
