"""The solution package: the manifest schema and the zip that carries a solution between environments.

Nothing here touches the database; ``credflow.services.solutions`` and ``credflow.services.solution_import``
turn rows into a package and a package back into rows.
"""
