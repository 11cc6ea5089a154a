"""The course tooling: what turns the lessons into exercises, a student edition and homework.

* :mod:`~lessons_lib.course.checks`: the exercise checks (a grading engine, one file of
  exercises per lesson, one registry); ``python -m lessons_lib.course.checks --list``.
* :mod:`~lessons_lib.course.markers`: nbgrader's solution markers, the model-answer blocks and
  the check cells, as the notebooks write them.
* :mod:`~lessons_lib.course.student_edition`: the notebooks with every solution replaced by a
  stub (``make student``).
* :mod:`~lessons_lib.course.homework`: the problem sets as an nbgrader course (``make homework``).
* :mod:`~lessons_lib.course.nbclient_compat`: nbclient's Output widget without its echo to the
  kernel (jupyter/nbclient#312), for every headless run of a notebook.
"""
